"""The outbox: every email that will be sent, as a row from the moment of enrollment.

Enrolling (one, in bulk, from CSV), when each step is due, claiming due rows, stopping and
restoring unsent ones, the marks and red flags that hold or skip them, suppression, retention.
"""
