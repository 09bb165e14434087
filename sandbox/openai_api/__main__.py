"""`python -m sandbox.openai_api`: the OpenAI stand-in alone (see `sandbox.openai_api.app.main`)."""

from sandbox.openai_api.app import main

main()
