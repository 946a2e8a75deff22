"""The outbox stage: the durable store of patients, enrolments, messages and their trail."""
