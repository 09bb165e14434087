"""`python -m sandbox.storage`: the Storage stand-in alone (see `sandbox.storage.app.main`)."""

from sandbox.storage.app import main

main()
