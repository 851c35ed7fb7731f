"""The course's recurrent baselines for the trajectory exercise: an LSTM encoder-decoder, and its bidirectional
variant, in PyTorch (the course built them in Keras; Sequences Example 2).

The course's model: LSTM(300) encoder -> LSTM(300) decoder initialised with the encoder's final state (h, c) ->
Dense(2) on every decoder step; Adam, mean squared error, batch 128, 20 epochs. Its test MSE on its own days of the
Edinburgh Informatics Forum database: LSTM 0.0104 at the end of training (0.0074 at best), BiLSTM 0.0091 (0.0068).

What the course's description leaves open, and what these models do:

- The decoder's input. The course's notes say only that the decoder starts from the encoder's state. Here it reads
  the same teacher-forced input as the exercise's transformer (``solutions/seq2seq.py``): the last observed point,
  then the true future shifted by one (``decoder_inputs``); ``predict`` feeds back its own outputs. So both models
  share one interface, ``forward(source, target_in)`` and ``predict(source, steps)``, and one training loop.
- The bidirectional variant. Its encoder's two directions end in two states; the decoder is initialised with their
  concatenation, so it has ``2 * hidden`` units (the sum would keep ``hidden``; the concatenation loses nothing).
- Initialisation is PyTorch's (uniform in +-1/sqrt(hidden)), not Keras's (Glorot, orthogonal, forget bias 1).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def decoder_inputs(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Teacher forcing's decoder input: source (B, S, D), target (B, T, D) -> (B, T, D) =
    [source[:, -1], target[:, 0], ..., target[:, T - 2]]."""
    return torch.cat([source[:, -1:], target[:, :-1]], dim=1)  # (B, 1 + T - 1, D)


class LSTMEncoderDecoder(nn.Module):
    """LSTM encoder -> LSTM decoder started from the encoder's final (h, c) -> a linear map to points per step.

    Args:
        input_dim: coordinates per point (2: x, y).
        hidden: the encoder's LSTM units per direction (the course: 300).
        bidirectional: encode in both directions; the decoder then has ``2 * hidden`` units and starts from the
            two directions' final states concatenated.
    """

    def __init__(self, input_dim: int = 2, hidden: int = 300, bidirectional: bool = False):
        super().__init__()
        self.bidirectional = bidirectional
        self.encoder = nn.LSTM(input_dim, hidden, batch_first=True, bidirectional=bidirectional)
        decoder_hidden = 2 * hidden if bidirectional else hidden
        self.decoder = nn.LSTM(input_dim, decoder_hidden, batch_first=True)
        self.output_proj = nn.Linear(decoder_hidden, input_dim)

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source (B, S, D) -> the decoder's initial state (h, c), each (1, B, decoder hidden)."""
        _, (h, c) = self.encoder(source)  # (directions, B, hidden) each
        if self.bidirectional:
            # (2, B, hidden) -> (1, B, 2 * hidden): forward direction's units first, then the backward's
            h = torch.cat([h[0], h[1]], dim=-1).unsqueeze(0)
            c = torch.cat([c[0], c[1]], dim=-1).unsqueeze(0)
        return h, c

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: source (B, S, D), target_in (B, T, D) (``decoder_inputs``) -> predictions (B, T, D);
        step t is predicted from the observed steps and target_in[:, :t + 1]."""
        states, _ = self.decoder(target_in, self.encode(source))  # (B, T, decoder hidden)
        return self.output_proj(states)  # (B, T, D)

    def predict(self, source: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoregressive: from the last observed point, each step reads the previous step's prediction.

        source (B, S, D), steps >= 1 -> (B, steps, D). The decoder's state is carried from step to step, which
        is the same computation as ``forward`` on the growing sequence of fed-back points. Runs in the model's
        current mode, without gradients.
        """
        points = []
        with torch.no_grad():
            state = self.encode(source)
            point = source[:, -1:]  # (B, 1, D): the last observed point
            for _ in range(steps):
                out, state = self.decoder(point, state)  # (B, 1, decoder hidden)
                point = self.output_proj(out)  # (B, 1, D)
                points.append(point)
        return torch.cat(points, dim=1)  # (B, steps, D)
