"""The enrol stage: one rule set for enrolments typed at the desk or the command line, or a CSV."""
