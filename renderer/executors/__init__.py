"""Who renders: the executor interface and factory, the local pool of worker processes, the Dask client and its remote side."""
