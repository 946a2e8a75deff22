"""The plan stage: when each email of a campaign is due for one patient, and the plan in words."""
