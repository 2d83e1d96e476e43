"""`python -m nac.restructure`: one restructure step on an original network.json (the command is `nac.cli.restructure`)."""

from nac.cli.restructure import main, run  # noqa: F401

if __name__ == "__main__":
    run()
