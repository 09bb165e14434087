"""Clients for the outside world (X, OpenAI, Supabase Storage): the only modules that talk to it."""
