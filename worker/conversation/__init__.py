"""People talking to the account: mentions and replies turned into rows."""
