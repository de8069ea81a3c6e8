"""The web admin under /admin: server-rendered pages for clinic staff, behind a sign-in."""
