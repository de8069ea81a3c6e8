"""People and access: clinics, their patients, admins, sessions, API keys and signed links.

Who may see or do what, and what is kept of whom: the clinic (tenant) and its set-up and
branding, admin sign-in, links in emails, the audit log, patient export and erasure.
"""
