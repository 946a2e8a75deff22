"""Clinic aftercare: one subpackage per stage, composed by pipeline.py.

content (the clinic's YAML, typed) -> check (house rules) -> plan (when each email is due)
-> render (PDF handouts, emails) -> enrol (one rule set) -> outbox (the durable store)
-> delivery (file or SendGrid) -> send (claim, render, deliver, record) -> web (staff pages).
"""
