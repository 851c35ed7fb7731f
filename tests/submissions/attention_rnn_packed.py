"""A correct submission written differently from the reference: packed sequences (so the LSTMs never see
padding and the final hidden state is each tweet's last real step), a large negative number for masking, and
sigmoid written out."""

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class TemporalAttention(nn.Module):
    def __init__(self, hidden_dim, normalise="softmax"):
        super().__init__()
        self.normalise = normalise
        self.score = nn.Linear(hidden_dim, 1)

    def forward(self, h, mask=None):
        raw = self.score(h)[..., 0]  # (B, T)
        if mask is None:
            mask = torch.ones_like(raw, dtype=torch.bool)
        if self.normalise == "sigmoid":
            weights = 1.0 / (1.0 + torch.exp(-raw)) * mask
        else:
            e = torch.tanh(raw).masked_fill(~mask, -1e9)
            weights = torch.exp(e - e.max(dim=1, keepdim=True).values)
            weights = weights / weights.sum(dim=1, keepdim=True)
        return h * weights[:, :, None], weights


class AttentionLSTMClassifier(nn.Module):
    def __init__(self, vocab_size, num_classes=2, embed_dim=128, hidden_dim=64, normalise="softmax"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm1 = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.attention = TemporalAttention(hidden_dim, normalise)
        self.lstm2 = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, tokens, return_attention=False):
        lengths = (tokens != 0).sum(dim=1).cpu()
        T = tokens.shape[1]
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm1(packed)[0], batch_first=True, total_length=T)
        weighted, weights = self.attention(h, tokens != 0)
        packed = pack_padded_sequence(weighted, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm2(packed)
        logits = self.classifier(h_n[-1])
        if return_attention:
            return logits, weights
        return logits
