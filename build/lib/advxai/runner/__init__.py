"""Runner layer: an experiment grid (a YAML config) to papermill runs, the cache, the executors and the book.

``config`` (the config, every key checked), ``runs`` (the runs of a grid and their cache keys), ``fingerprint``
(the library code a run uses), ``environment`` (versions and the lock), ``provenance``, ``executors`` (serial,
parallel, Dask), ``publish`` (executed notebooks into the book), ``pipeline`` (run a grid, build the tables),
``cli`` (the ``advxai`` command).

May import: anything in ``advxai``; nothing imports the runner but ``advxai.__main__``."""
