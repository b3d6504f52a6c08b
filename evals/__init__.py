"""Evaluation of a trained run (`docpipe eval`): ask it the dataset's questions and the user's, score the
answers, compare with the base model on the same questions, give a verdict, and write a report a person reads.
`evals.pipeline.run` is the stage."""

from docpipe.errors import DocpipeError


class EvalError(DocpipeError):
    """An evaluation that cannot go on; the message is one line that says what to do."""

    stage = "evaluate"
