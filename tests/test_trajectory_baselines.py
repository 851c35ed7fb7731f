"""The course's LSTM baselines for the trajectory exercise (``autograder/exercises/seq2seq/baselines.py``): shapes, and
``predict`` is ``forward`` fed its own outputs."""

from __future__ import annotations

import pytest
import torch

from autograder.exercises.seq2seq.baselines import LSTMEncoderDecoder, decoder_inputs

B, S, T, HIDDEN = 3, 25, 7, 16


@pytest.fixture(params=[False, True], ids=["lstm", "bilstm"])
def model(request):
    torch.manual_seed(0)
    return LSTMEncoderDecoder(input_dim=2, hidden=HIDDEN, bidirectional=request.param).eval()


def test_decoder_size(model):
    assert model.decoder.hidden_size == (2 * HIDDEN if model.bidirectional else HIDDEN)


def test_forward_and_predict_shapes(model):
    source, target = torch.rand(B, S, 2), torch.rand(B, T, 2)
    assert decoder_inputs(source, target).shape == (B, T, 2)
    assert model(source, decoder_inputs(source, target)).shape == (B, T, 2)
    assert model.predict(source, T).shape == (B, T, 2)
    assert model.predict(source, 1).shape == (B, 1, 2)


def test_predict_is_forward_fed_its_outputs(model):
    source = torch.rand(B, S, 2)
    predicted = model.predict(source, T)
    with torch.no_grad():
        forced = model(source, decoder_inputs(source, predicted))
    torch.testing.assert_close(forced, predicted, rtol=1e-4, atol=1e-5)


def test_forward_is_causal(model):
    source, target_in = torch.rand(B, S, 2), torch.rand(B, T, 2)
    changed = target_in.clone()
    changed[:, 4:] += 1.0
    with torch.no_grad():
        torch.testing.assert_close(model(source, target_in)[:, :4], model(source, changed)[:, :4])


def test_trains(model):
    """One Adam step on MSE moves the loss: gradients reach both LSTMs and the output layer."""
    model.train()
    source, target = torch.rand(B, S, 2), torch.rand(B, T, 2)
    loss = torch.nn.functional.mse_loss(model(source, decoder_inputs(source, target)), target)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
