"""`python -m nac.construct`: construct an EnvelopeNet end to end (the command is `nac.cli.construct`)."""

from nac.cli.construct import main, run  # noqa: F401

if __name__ == "__main__":
    run()
