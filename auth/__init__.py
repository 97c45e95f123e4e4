"""Who someone is and what they may do: persons, accounts, authorizations, staff, sessions."""
