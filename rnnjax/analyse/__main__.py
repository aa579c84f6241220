"""``python -m rnnjax.analyse RUN_DIR``: see :mod:`rnnjax.analyse`."""

from rnnjax.analyse import main

if __name__ == "__main__":
    main()
