"""What chirpbase's work costs on X and OpenAI, and what the account's X access allows.

* ``prices``: the X operation each call is billed as (a post with a URL, a summoned reply, an
  owned read ...), its price from ``configs.pricing``, estimates made before a call (the budget
  reservation, the price shown when a post is scheduled), and the cheaper of two ways to read
  the account's own posts.
* ``access``: X's access tiers and the capabilities chirpbase needs (the table itself is SQL:
  ``x_capabilities``, one source for the trigger, the door, the worker, doctor and status).

SQL applies the same prices (``x_price``, ``record_x_usage``) and X's once-per-UTC-day billing of
a resource when the call is recorded; Python only estimates.
"""
