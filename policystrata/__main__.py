"""``python -m policystrata``: the same command group as ``strata`` and ``policystrata``.

Useful where the console scripts are not on ``PATH`` (a bare ``pip install --user``, a venv that
is not activated)::

    python -m policystrata scan --config policystrata.yaml --out scan-out
"""

from policystrata.cli import main

if __name__ == "__main__":
    main(prog_name="python -m policystrata")
