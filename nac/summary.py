"""`python -m nac.summary`: layers, parameters and FLOPs of an EnvelopeNet (the command is `nac.cli.summary`)."""

from nac.cli.summary import main, run  # noqa: F401

if __name__ == "__main__":
    run()
