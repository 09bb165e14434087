"""What the account says: generated tweet text and its checks, images fitted to X, X's text rules.

Pure domain code (no I/O of its own): the jobs call it, the clients validate with it.
"""
