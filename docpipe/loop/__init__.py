"""The typed improvement loop: a task, its ACTION_SPACE, a keep rule on paired per-example scores, a journal.

Generic: nothing here knows what a language model is. `docpipe.build` plugs the document-to-model
pipeline in as one task; a test plugs in a scikit-learn classifier to prove the seam.
"""
