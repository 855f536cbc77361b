"""What VSearch keeps on disk: the catalog, the vector index built from it, captions, the data folder and its lock.

Nothing here loads a model or imports torch; everything here may be used from any thread (each module says how).
"""
