"""The send stage: due messages rendered and handed to a backend; withdrawals; provider reports."""
