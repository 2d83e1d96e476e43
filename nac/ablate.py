"""`python -m nac.ablate`: one-branch ablations of a trained step (the command is `nac.cli.ablate`)."""

from nac.cli.ablate import main, run  # noqa: F401

if __name__ == "__main__":
    run()
