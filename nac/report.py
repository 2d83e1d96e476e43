"""`python -m nac.report`: the paper's Table 1 and Figures 2-4 from run directories (the command is `nac.cli.report`)."""

from nac.cli.report import main, run  # noqa: F401

if __name__ == "__main__":
    run()
