"""The photo library's work: keeping the catalog in step with the watched folders (scanning, reconciling,
watching), embedding what is new (indexing, through one writer per session), and answering queries (parsing,
ranking, paging) and thumbnails. Built on ``core.store`` and ``core.engine``; ``core.service`` wraps it.
"""
