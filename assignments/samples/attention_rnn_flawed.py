"""A plausible student submission for the attention-over-LSTM exercise with the course notebook's own two
flaws: padding gets attention, and the classifier reads the last (padded) step. For the demo and the tests."""

import torch
import torch.nn as nn


class TemporalAttention(nn.Module):
    def __init__(self, hidden_dim, normalise="softmax"):
        super().__init__()
        self.normalise = normalise
        self.score = nn.Linear(hidden_dim, 1)

    def forward(self, h, mask=None):
        scores = self.score(h).squeeze(-1)
        if self.normalise == "softmax":
            weights = torch.softmax(torch.tanh(scores), dim=1)  # the mask is never used
        else:
            weights = torch.sigmoid(scores)
        return h * weights.unsqueeze(-1), weights


class AttentionLSTMClassifier(nn.Module):
    def __init__(self, vocab_size, num_classes=2, embed_dim=128, hidden_dim=64, normalise="softmax"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm1 = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.attention = TemporalAttention(hidden_dim, normalise)
        self.lstm2 = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, tokens, return_attention=False):
        h, _ = self.lstm1(self.embedding(tokens))
        weighted, weights = self.attention(h, tokens != 0)
        out, _ = self.lstm2(weighted)
        logits = self.classifier(out[:, -1])  # the last step, which is padding for most tweets
        return (logits, weights) if return_attention else logits
