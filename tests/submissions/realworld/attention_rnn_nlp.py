"""The style of LSTM-attention code in NLP projects (e.g. attention for sentiment classification after
Zhou et al., 2016): a score layer without a bias, masked_fill(mask == 0, -1e10) before the softmax, the last
real step gathered with torch.gather from the lengths. Names adapted to the contract.

Expected: the missing bias costs the attention's interface only; the values are checked with a zero bias."""

import torch
import torch.nn as nn


class TemporalAttention(nn.Module):
    def __init__(self, hidden_dim, normalise="softmax"):
        super().__init__()
        self.normalise = normalise
        self.score = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, h, mask=None):
        energy = self.score(h).squeeze(-1)  # (B, T)
        if self.normalise == "softmax":
            energy = torch.tanh(energy)
            if mask is not None:
                energy = energy.masked_fill(mask == 0, -1e10)
            alpha = torch.softmax(energy, dim=1)
        else:
            alpha = torch.sigmoid(energy)
        if mask is not None:
            alpha = alpha * mask.float()
        return h * alpha.unsqueeze(2), alpha


class AttentionLSTMClassifier(nn.Module):
    def __init__(self, vocab_size, num_classes=2, embed_dim=128, hidden_dim=64, normalise="softmax"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm1 = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.attention = TemporalAttention(hidden_dim, normalise)
        self.lstm2 = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, tokens, return_attention=False):
        mask = tokens.ne(0)
        lengths = mask.long().sum(dim=1)
        outputs, _ = self.lstm1(self.embedding(tokens))
        attended, alpha = self.attention(outputs, mask)
        outputs, _ = self.lstm2(attended)
        idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.size(2))  # (B, 1, H)
        last = outputs.gather(1, idx).squeeze(1)  # (B, H)
        logits = self.classifier(last)
        return (logits, alpha) if return_attention else logits
