"""The render stage: handouts to PDF, campaign steps to emails, and the files a build writes."""
