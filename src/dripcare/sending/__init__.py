"""Sending a claimed batch: compose, sign, hand to a transport, record what happened.

Transports and each clinic's own SMTP server, sending domains and DKIM, send limits and the
circuit breaker, what comes back (bounces, complaints, SMTP replies), and the alerts to clinics.
"""
