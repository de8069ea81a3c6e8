"""Provider webhooks: each module checks that a request really comes from its provider, the
way that provider signs (or authenticates) it, and reads its payload as feedback events."""
