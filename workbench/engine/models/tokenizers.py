"""Tokenizers: the pad-token rule every loader applies, and the check that a student reads text with
the same token ids as its teacher."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from workbench.engine.models.errors import TokenizerMismatchError


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> None:
    """Batching needs a pad id; positions holding it are masked out of every loss, so EOS is safe."""
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


def check_tokenizers(teacher_tok: PreTrainedTokenizerBase, student_tok: PreTrainedTokenizerBase) -> None:
    """Raise :class:`TokenizerMismatchError` unless both map every token to the same id."""
    teacher_vocab, student_vocab = teacher_tok.get_vocab(), student_tok.get_vocab()
    if teacher_vocab == student_vocab:
        return
    differing = [t for t in teacher_vocab.keys() | student_vocab.keys() if teacher_vocab.get(t) != student_vocab.get(t)]
    # The example is the differing token with the lowest teacher id: stable and usually a common word.
    differing.sort(key=lambda t: (teacher_vocab.get(t, 1 << 62), student_vocab.get(t, 1 << 62), t))
    token = differing[0]
    where_t = f"id {teacher_vocab[token]} in the teacher" if token in teacher_vocab else "missing from the teacher"
    where_s = f"id {student_vocab[token]} in the student" if token in student_vocab else "missing from the student"
    raise TokenizerMismatchError(
        "student.path",
        f"the student's tokenizer differs from the teacher's in {len(differing)} of {len(teacher_vocab | student_vocab)} tokens "
        f"(token {token!r} is {where_t} and {where_s})",
        "logit distillation needs the same tokenizer: derive the student from the teacher or pick a student from the same model family",
    )
