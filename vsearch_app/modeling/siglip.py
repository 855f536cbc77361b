"""SigLIP dual encoder: a ViT image tower and a text transformer mapped into one embedding space.

Attribute names equal the checkpoint keys (``vision_model.encoder.layers.0.self_attn.q_proj.weight`` ...), so
loading is a strict one-to-one match. Both towers are pre-norm transformers with learned position embeddings and no
attention mask: SigLIP's text side was trained on sequences padded to a fixed length, pad tokens included.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.config import SiglipConfig, SiglipTextConfig, SiglipVisionConfig
from vsearch_app.modeling.layers import Embedding, Mlp, SelfAttention, can_pack, merge_heads, split_heads
from vsearch_app.modeling.weights import instantiate_and_load, read_config


class EncoderLayer(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, num_heads: int, eps: float, act: str) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(hidden_size, eps=eps)
        self.self_attn = SelfAttention(hidden_size, num_heads)
        self.layer_norm2 = nn.LayerNorm(hidden_size, eps=eps)
        self.mlp = Mlp(hidden_size, intermediate_size, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.self_attn(self.layer_norm1(x), residual=x)
        return self.mlp(self.layer_norm2(x), residual=x)


class Encoder(nn.Module):
    def __init__(self, config: SiglipVisionConfig | SiglipTextConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(
                config.hidden_size,
                config.intermediate_size,
                config.num_attention_heads,
                config.layer_norm_eps,
                config.hidden_act,
            )
            for _ in range(config.num_hidden_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class VisionEmbeddings(nn.Module):
    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.position_embedding = Embedding(config.num_patches, config.hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weight = self.patch_embedding.weight
        patches = self.patch_embedding(pixel_values.to(dtype=weight.dtype, device=weight.device))
        patches = patches.flatten(2).transpose(1, 2)  # [B, C, gh, gw] -> [B, gh*gw, C]
        # The transpose is a strided view, and the add would keep its layout for the whole residual stream: every
        # LayerNorm would then copy its input and every residual add would run strided (measured: 4% of the image
        # tower's time on the 2-core CPU). One copy here instead.
        return (patches + self.position_embedding.weight).contiguous()


class AttentionPoolingHead(nn.Module):
    """One learned probe attends over all patches (the checkpoint stores a packed in-projection, as
    ``torch.nn.MultiheadAttention`` names it), then a residual MLP."""

    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.probe = nn.Parameter(torch.zeros(1, 1, width))
        self.attention = _PackedAttention(width)
        self.layernorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.mlp = Mlp(width, config.intermediate_size, config.hidden_act)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        probe = self.probe.expand(hidden.shape[0], -1, -1)
        pooled = self.attention(probe, hidden, self.num_heads)
        pooled = pooled + self.mlp(self.layernorm(pooled))
        return pooled[:, 0]


class _PackedAttention(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.zeros(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, num_heads: int) -> torch.Tensor:
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = split_heads(F.linear(query, w_q, b_q), num_heads)
        k = split_heads(F.linear(keys, w_k, b_k), num_heads)
        v = split_heads(F.linear(keys, w_v, b_v), num_heads)
        return self.out_proj(merge_heads(F.scaled_dot_product_attention(q, k, v)))


class SiglipVisionTransformer(nn.Module):
    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = VisionEmbeddings(config)
        self.encoder = Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        if config.vision_use_head:
            self.head = AttentionPoolingHead(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Patch features after the final LayerNorm: [B, num_patches, hidden]."""
        return self.post_layernorm(self.encoder(self.embeddings(pixel_values)))

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if not self.config.vision_use_head:
            raise CheckpointError("this vision tower has no pooling head, so it cannot produce image embeddings")
        return self.head(self(pixel_values))


class TextEmbeddings(nn.Module):
    def __init__(self, config: SiglipTextConfig) -> None:
        super().__init__()
        self.token_embedding = Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[-1]
        if length > self.position_embedding.num_embeddings:
            raise ValueError(f"text of {length} tokens exceeds the model's {self.position_embedding.num_embeddings}")
        return self.token_embedding(input_ids) + self.position_embedding.weight[:length]


class SiglipTextTransformer(nn.Module):
    def __init__(self, config: SiglipTextConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = TextEmbeddings(config)
        self.encoder = Encoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.hidden_size, config.projection_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.final_layer_norm(self.encoder(self.embeddings(input_ids)))
        # SigLIP pools the last position, which is usually padding: that is how it was trained.
        return self.head(hidden[:, -1])


class SiglipModel(nn.Module):
    def __init__(self, config: SiglipConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_model = SiglipVisionTransformer(config.vision_config)
        self.text_model = SiglipTextTransformer(config.text_config)
        # Initialised as in the SigLIP paper (t' = log 10, b = -10); checkpoints overwrite both.
        self.logit_scale = nn.Parameter(torch.full((1,), math.log(10.0)))
        self.logit_bias = nn.Parameter(torch.full((1,), -10.0))

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Unnormalised image embeddings [B, D]."""
        return self.vision_model.pooled(pixel_values)

    def get_text_features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Unnormalised text embeddings [B, D]."""
        return self.text_model(input_ids)

    def pair_logits(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """logits_per_image [N_img, N_txt] from unnormalised embeddings, as SigLIP scores pairs."""
        image_embeds = F.normalize(image_embeds, dim=-1)
        text_embeds = F.normalize(text_embeds, dim=-1)
        return image_embeds @ text_embeds.t() * self.logit_scale.exp() + self.logit_bias

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        return self.pair_logits(self.get_image_features(pixel_values), self.get_text_features(input_ids))

    def pack_for_inference(self) -> bool:
        """Prepack the encoder layers' weights for oneDNN when that is faster (bf16 on a CPU); returns whether it
        did. For inference only: a packed model no longer follows changes to its parameters, so never train it."""
        weight = self.vision_model.embeddings.patch_embedding.weight
        if not can_pack(weight.dtype, weight.device):
            return False
        for module in self.modules():
            if isinstance(module, (Mlp, SelfAttention)):
                module.pack_for_inference()
        return True


def load_siglip(folder: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Load a SigLIP checkpoint folder (config.json + safetensors) strictly into our model, in eval mode."""
    config = SiglipConfig.from_hf_dict(read_config(folder), where=f"{folder}/config.json")
    if not config.vision_config.vision_use_head:
        raise CheckpointError(f"{folder}: the vision tower has no pooling head, so it cannot embed images for search")
    model = instantiate_and_load(lambda: SiglipModel(config), folder, device=device, dtype=dtype)
    return model.eval()
