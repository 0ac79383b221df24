"""Analyses of CAMEO embeddings (Qt-free): similarity to examples, k-means clusters,
classification from labelled polygons.

`similarity.similarity_to_examples`, `cluster.cluster_embeddings` and
`classify.classify_embeddings` read an `embeddings.vrt` block by block and write their
rasters under hidden names, renamed into place only when complete. Clustering and
classification use scikit-learn (an optional dependency). This package file imports
nothing, so the plugin loads without those packages.
"""
