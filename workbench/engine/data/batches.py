"""Batches for the training loop: blocks in a seeded order that a checkpoint restores exactly."""

from __future__ import annotations

import torch


class BatchIterator:
    """Batches of blocks in a seeded order that a checkpoint can restore exactly.

    Each epoch visits every block once, in an order drawn from ``seed + epoch``;
    a batch that runs past the end of an epoch continues into the next one, so
    every batch is full even when there are fewer blocks than ``batch_size``.
    ``start`` skips that many batches (a run resumed at step ``k``).
    """

    def __init__(self, blocks: torch.Tensor, batch_size: int, seed: int, start: int = 0):
        if blocks.ndim != 2 or blocks.shape[0] == 0:
            raise ValueError(f"blocks must be a non-empty [N, seq_len] tensor, got shape {tuple(blocks.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.blocks = blocks
        self.batch_size = batch_size
        self.seed = seed
        consumed = start * batch_size
        self.epoch = consumed // blocks.shape[0]
        self.index = consumed % blocks.shape[0]
        self._order = self._order_of(self.epoch)

    def _order_of(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.blocks.shape[0], generator=generator)

    def next_batch(self) -> torch.Tensor:
        """The next ``[batch_size, seq_len]`` batch."""
        return self.blocks[self.next_indices()].long()  # text blocks are kept as int32

    def next_indices(self) -> torch.Tensor:
        """The indices (into ``blocks``) of the next batch's blocks, in batch order: what a per-block
        store such as the teacher cache is read with."""
        picked: list[torch.Tensor] = []
        needed = self.batch_size
        while needed:
            take = min(needed, len(self._order) - self.index)
            picked.append(self._order[self.index : self.index + take])
            self.index += take
            needed -= take
            if self.index == len(self._order):
                self.epoch += 1
                self.index = 0
                self._order = self._order_of(self.epoch)
        return torch.cat(picked)

    def state(self) -> dict[str, int]:
        """The position in the data, as plain numbers (saved with a checkpoint)."""
        return {"epoch": self.epoch, "index": self.index}

    def load_state(self, state: dict[str, int]) -> None:
        """Continue from a position returned by :meth:`state`."""
        self.epoch = int(state["epoch"])
        self.index = int(state["index"])
        self._order = self._order_of(self.epoch)
