"""The models at run time: where they are (the hub cache), which one a library's vectors belong to, where they run,
and the two jobs they do: the embedder (SigLIP: photos and text to vectors) and the captioner (PaliGemma).

The model code itself is ``vsearch_app.modeling`` (pure torch); this room loads it with the project's settings.
Importing a module that imports torch is deferred by ``core.service`` until a model is first needed.
"""
