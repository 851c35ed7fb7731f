"""Known mistakes of the Vision Transformer exercise (edits of solutions/vit.py)."""

from __future__ import annotations

from mistake_edits import ROOT, Cases, Mutation

VIT_SOLUTION = ROOT / "solutions" / "vit.py"
_VIT_LOOP = ("            maps.append(weights)\n        x = self.norm(x)  # (B, N, D)\n        logits = self.head(x)",
             "            maps.append(weights)\n        x = self.norm(x)  # (B, N, D)\n        pooled, pool_weights")
_POST_NORM = (
    ("h = self.norm1(x)  # (B, N, D)\n        attended, weights = self.attn(h, h, h,",
     "attended, weights = self.attn(x, x, x,"),
    ("x = x + attended  # (B, N, D)\n        x = x + self.mlp(self.norm2(x))  # (B, N, D)",
     "x = self.norm1(x + attended)  # (B, N, D)\n        x = self.norm2(x + self.mlp(x))  # (B, N, D)"),
)

# The named mistakes of the issue, each with the checks it must fail.
VIT = (
    Mutation("patches_ppc_order", (("x = x.permute(0, 2, 4, 1, 3, 5)", "x = x.permute(0, 2, 4, 3, 5, 1)"),),
             ("patches.order", "patches.values")),
    Mutation("patches_column_major", (("x = x.permute(0, 2, 4, 1, 3, 5)", "x = x.permute(0, 4, 2, 1, 3, 5)"),),
             ("patches.order", "patches.values")),
    Mutation("encoder_no_positions", (("return self.projection(patches) + self.position_embedding(positions)",
                                       "return self.projection(patches)"),), ("encoder.values",)),
    Mutation("encoder_positions_twice", (("return self.projection(patches) + self.position_embedding(positions)",
                                          "return self.projection(patches) + 2 * self.position_embedding(positions)"),),
             ("encoder.values",)),
    Mutation("block_post_norm", _POST_NORM, ("block.values",)),
    Mutation("block_mlp_relu", (("nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout)",
                                 "nn.Linear(embed_dim, mlp_dim), nn.ReLU(), nn.Dropout(dropout)"),),
             ("block.values",)),
    Mutation("block_mlp_gelu_tanh", (("nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout)",
                                      "nn.Linear(embed_dim, mlp_dim), nn.GELU(approximate='tanh'), nn.Dropout(dropout)"),),
             ("block.values",)),
    Mutation("head_relu", (("layers += [nn.Linear(width, units), nn.GELU(), nn.Dropout(head_dropout)]",
                            "layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(head_dropout)]"),),
             ("vit.values",)),
    Mutation("head_gelu_tanh", (("layers += [nn.Linear(width, units), nn.GELU(), nn.Dropout(head_dropout)]",
                                 "layers += [nn.Linear(width, units), nn.GELU(approximate='tanh'), nn.Dropout(head_dropout)]"),),
             ("vit.values",)),
    Mutation("vit_no_final_norm", ((_VIT_LOOP[0], _VIT_LOOP[0].replace("x = self.norm(x)", "x = x")),),
             ("vit.values",)),
    Mutation("vit_shared_blocks", (("[ViTBlock(projection_dim, num_heads, mlp_dim, dropout) for _ in range(num_blocks)]",
                                    "[ViTBlock(projection_dim, num_heads, mlp_dim, dropout)] * num_blocks"),),
             ("vit.own_blocks",)),
    Mutation("tokenizer_pool_stride_1", (("3, stride=2, padding=1)", "3, stride=1, padding=1)"),),
             ("tokenizer.shapes", "tokenizer.values", "tokenizer.gradients")),
    Mutation("tokenizer_pool_no_padding", (("3, stride=2, padding=1)", "3, stride=2, padding=0)"),),
             ("tokenizer.shapes", "tokenizer.values", "tokenizer.gradients")),
    Mutation("pooling_softmax_over_features", (("weights = torch.softmax(scores, dim=1)",
                                                "weights = torch.softmax(scores.unsqueeze(-1), dim=-1).squeeze(-1)"),),
             ("pooling.weights_sum", "pooling.values")),
    Mutation("cct_no_positions", (("x = self.tokenizer(images) + self.position_embedding", "x = self.tokenizer(images)"),),
             ("cct.values",)),
    Mutation("cct_positions_twice", (("x = self.tokenizer(images) + self.position_embedding",
                                      "x = self.tokenizer(images) + 2 * self.position_embedding"),),
             ("cct.values",)),
    Mutation("cct_no_final_norm", ((_VIT_LOOP[1], _VIT_LOOP[1].replace("x = self.norm(x)", "x = x")),),
             ("cct.values",), "no final LayerNorm"),
    Mutation("cct_shared_blocks", (("[ViTBlock(D, num_heads, mlp_dim, dropout) for _ in range(num_blocks)]",
                                    "[ViTBlock(D, num_heads, mlp_dim, dropout)] * num_blocks"),),
             ("cct.own_blocks",), "share one module"),
)

# One bug for each check that the named mistakes do not already catch: every check has a submission failing it.
VIT_CHECK_BUGS = (
    Mutation("patches_argument_renamed", (("def extract_patches(images, patch_size: int):", "def extract_patches(images, size: int):"),
                                          ("P = patch_size\n", "P = size\n")), ("patches.interface",)),
    Mutation("patches_batch_of_one_squeezed", (("return x.reshape(B, h * w, C * P * P)", "return x.reshape(B, h * w, C * P * P).squeeze(0)"),),
             ("patches.shapes", "patches.order", "patches.values", "vit.shapes", "vit.values"), parts=("extract_patches", "VisionTransformer"),
             cascade="the submission's own ViT calls it on a batch of one"),
    Mutation("encoder_projection_without_bias", (("self.projection = nn.Linear(patch_dim, projection_dim)",
                                                  "self.projection = nn.Linear(patch_dim, projection_dim, bias=False)"),),
             ("encoder.interface",)),
    Mutation("encoder_whole_table", (("return self.projection(patches) + self.position_embedding(positions)",
                                      "return self.projection(patches) + self.position_embedding.weight"),),
             ("encoder.shapes", "encoder.values", "encoder.gradients")),
    Mutation("encoder_detached_patches", (("return self.projection(patches) + self.position_embedding(positions)",
                                           "return self.projection(patches.detach()) + self.position_embedding(positions)"),),
             ("encoder.gradients",)),
    Mutation("block_norm2_renamed", (("self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.ln2 = nn.LayerNorm(embed_dim, eps=1e-6)"),
                                     ("x = x + self.mlp(self.norm2(x))", "x = x + self.mlp(self.ln2(x))")), ("block.interface",)),
    Mutation("block_weights_averaged", (("average_attn_weights=False)", "average_attn_weights=True)"),),
             ("block.shapes", "block.attention")),
    Mutation("block_weights_transposed", (("return (x, weights) if return_attention else x",
                                           "return (x, weights.transpose(-1, -2)) if return_attention else x"),),
             ("block.attention", "block.values")),
    Mutation("block_sublayer_without_dropout", (("self.attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)",
                                                 "self.attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)"),),
             ("block.dropout",)),
    Mutation("block_mlp_without_dropout", (("nn.Linear(mlp_dim, embed_dim), nn.Dropout(dropout),",
                                            "nn.Linear(mlp_dim, embed_dim), nn.Identity(),"),
                                           ("nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),",
                                            "nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Identity(),")),
             ("block.dropout",), hint="each sub-layer has its own dropout"),
    Mutation("block_detached_attention", (("x = x + attended  # (B, N, D)", "x = x + attended.detach()  # (B, N, D)"),),
             ("block.gradients",)),
    # vit-pytorch's and timm's class token (1, 1, D), read by the head in place of the flattened patch states
    Mutation("vit_class_token", (
        ("self.patch_encoder = PatchEncoder(num_patches, in_channels * patch_size * patch_size, projection_dim)\n",
         "self.patch_encoder = PatchEncoder(num_patches, in_channels * patch_size * patch_size, projection_dim)\n"
         "        self.cls_token = nn.Parameter(torch.zeros(1, 1, projection_dim))\n"),
        ("layers = [nn.Flatten(), nn.Dropout(head_dropout)]\n        width = num_patches * projection_dim",
         "layers = [nn.Dropout(head_dropout)]\n        width = projection_dim"),
        ("x = self.patch_encoder(patches)  # (B, N, D)\n",
         "x = self.patch_encoder(patches)  # (B, N, D)\n"
         "        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, 1 + N, D)\n"),
        ("logits = self.head(x)  # (B, N, D) -> (B, N * D) -> (B, num_classes)",
         "logits = self.head(x[:, 0])  # (B, D) -> (B, num_classes)")),
             ("vit.interface", "vit.attention", "vit.values", "vit.gradients")),
    Mutation("vit_last_layer_without_bias", (("layers.append(nn.Linear(width, num_classes))",
                                              "layers.append(nn.Linear(width, num_classes, bias=False))"),), ("vit.interface",)),
    Mutation("vit_logits_squeezed", (("logits = self.head(x)  # (B, N, D) -> (B, N * D) -> (B, num_classes)",
                                      "logits = self.head(x).squeeze(0)"),), ("vit.shapes", "vit.values")),
    Mutation("vit_last_map_only", ((_VIT_LOOP[0], _VIT_LOOP[0].replace("maps.append(weights)", "maps = [weights]")),),
             ("vit.attention",)),
    Mutation("vit_noise_in_eval", ((_VIT_LOOP[0], _VIT_LOOP[0].replace("x = self.norm(x)", "x = self.norm(x) + 1e-3 * torch.randn_like(x)")),),
             ("vit.eval", "vit.values", "vit.gradients")),
    Mutation("vit_detached_images", (("patches = extract_patches(images, self.patch_size)",
                                      "patches = extract_patches(images.detach(), self.patch_size)"),), ("vit.gradients",)),
    Mutation("tokenizer_convs_sequential", (("self.convs = nn.ModuleList(\n            [nn.Conv2d(c_in, c, 3, padding=1, bias=False)",
                                             "self.convs = nn.Sequential(\n            *[nn.Conv2d(c_in, c, 3, padding=1, bias=False)"),),
             ("tokenizer.interface",)),
    Mutation("tokenizer_detached_images", (("        x = images\n        for conv in self.convs:", "        x = images.detach()\n        for conv in self.convs:"),),
             ("tokenizer.gradients",)),
    Mutation("pooling_score_without_bias", (("self.attention = nn.Linear(embed_dim, 1)", "self.attention = nn.Linear(embed_dim, 1, bias=False)"),),
             ("pooling.interface",)),
    Mutation("pooling_weights_keep_last_axis", (("return pooled, weights", "return pooled, weights.unsqueeze(-1)"),),
             ("pooling.shapes", "pooling.weights_sum")),
    Mutation("pooling_detached_tokens", (("pooled = torch.bmm(weights.unsqueeze(1), x)", "pooled = torch.bmm(weights.unsqueeze(1), x.detach())"),),
             ("pooling.gradients",)),
    Mutation("cct_head_without_bias", (("self.head = nn.Linear(D, num_classes)", "self.head = nn.Linear(D, num_classes, bias=False)"),),
             ("cct.interface",)),
    Mutation("cct_one_logit_short", (("logits = self.head(pooled)  # (B, num_classes)", "logits = self.head(pooled)[:, 1:]"),),
             ("cct.shapes", "cct.values", "cct.attention", "cct.gradients")),
    Mutation("cct_pooling_weights_dropped", (("return (logits, maps, pool_weights) if return_attention else logits",
                                              "return (logits, maps) if return_attention else logits"),), ("cct.attention",)),
    Mutation("cct_noise_in_eval", ((_VIT_LOOP[1], _VIT_LOOP[1].replace("x = self.norm(x)", "x = self.norm(x) + 1e-3 * torch.randn_like(x)")),),
             ("cct.eval", "cct.values", "cct.gradients")),
    Mutation("cct_detached_tokens", (("x = self.tokenizer(images) + self.position_embedding",
                                      "x = self.tokenizer(images).detach() + self.position_embedding"),), ("cct.gradients",)),
)

# Fails both training checks: the same logits, but only the last layer's bias learns (everything else is cut off
# from the loss). Freezing the blocks alone is not enough here: the ViT's head, trained on the flattened states of
# random blocks, still reaches 0.97 on digits (0.66-0.76 for the CCT's, which sees one pooled vector).
VIT_FROZEN = Mutation("vit_frozen", (
    ("logits = self.head(x)  # (B, N, D) -> (B, N * D) -> (B, num_classes)",
     "logits = self.head(x).detach() + self.head[-1].bias - self.head[-1].bias.detach()"),
    ("logits = self.head(pooled)  # (B, num_classes)",
     "logits = self.head(pooled).detach() + self.head.bias - self.head.bias.detach()"),
), ("vit.training", "cct.training", "vit.gradients", "cct.gradients"))


CASES = Cases(VIT_SOLUTION, VIT + VIT_CHECK_BUGS, VIT_FROZEN, "block_post_norm", "post-norm",
              ("SequencePooling", "        B, N, D = x.shape\n"),
              unknown=(("vit_norm1_eps_1e-2", "nn.LayerNorm(embed_dim, eps=1e-6)\n        self.attn", "nn.LayerNorm(embed_dim, eps=1e-2)\n        self.attn"),))
