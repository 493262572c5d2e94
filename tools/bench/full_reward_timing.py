"""HPSv2 and ImageReward at full size as their own packages score a folder, for timing against
`bench score` on the same folder and the same (random, full-size) networks; `file,score` CSV on
stdout. Each reference scores one image at a time, as its scoring function does (HPSv2's
`img_score.score`: `preprocess_val` on the PIL image, the model on image and prompt, the
diagonal of the features' product; ImageReward's `ImageReward.score`: its PIL transform, 35
prompt tokens).

    python tools/bench/full_reward_timing.py --make DIR N
        # DIR/hps.pt: a random OpenCLIP ViT-H-14 saved as HPSv2 ships its checkpoints
        #   ({"state_dict": fp16 tensors}); DIR/ImageReward.pt + DIR/med_config.json: a random
        #   ImageReward-v1.0 (BLIP ViT-L/16, BERT-base with cross-attention, the MLP head);
        #   DIR/images{1,N}/: 1 and N 512² PNGs
    python tools/bench/full_reward_timing.py hpsv2 DIR DIR/imagesN "a photo of a cat"
    python tools/bench/full_reward_timing.py imagereward DIR DIR/imagesN "a photo of a cat"

Run in the fixtures venv (tools/fixtures/requirements.txt: torch, open_clip, image-reward).
"""

import pathlib
import sys

import torch
from PIL import Image

sys.path.insert(0, "tools/fixtures")
sys.path.insert(0, "tools/bench")
from aesthetic_timing import write_images  # noqa: E402
from make_image_reward import image_reward_model  # noqa: E402

VIT_L16 = dict(img_size=224, patch_size=16, embed_dim=1024, depth=24, num_heads=16)
MED_CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "vocab_size": 30524,
    "encoder_width": 768,
    "add_cross_attention": True,
}


def hps_model():
    import open_clip

    model, _, preprocess_val = open_clip.create_model_and_transforms("ViT-H-14", pretrained=None)
    return model.eval(), preprocess_val, open_clip.get_tokenizer("ViT-H-14")


def make(root: pathlib.Path, n: int) -> None:
    import json

    torch.manual_seed(0)
    root.mkdir(parents=True, exist_ok=True)
    model, _, _ = hps_model()
    torch.save({"state_dict": {k: v.half() for k, v in model.state_dict().items()}}, root / "hps.pt")
    del model
    ir = image_reward_model(VIT_L16, MED_CONFIG)
    state = {k: v for k, v in ir.state_dict().items() if k.startswith(("blip.", "mlp."))}
    torch.save(state, root / "ImageReward.pt")
    (root / "med_config.json").write_text(json.dumps(MED_CONFIG, indent=2) + "\n")
    write_images(root, n)


def score_hps(root: pathlib.Path, folder: pathlib.Path, prompt: str) -> None:
    model, preprocess_val, tokenizer = hps_model()
    state = torch.load(root / "hps.pt", map_location="cpu")["state_dict"]
    model.load_state_dict({k: v.float() for k, v in state.items()})
    print("file,score")
    with torch.no_grad():
        for p in sorted(folder.glob("*.png")):
            image = preprocess_val(Image.open(p)).unsqueeze(0)
            out = model(image, tokenizer([prompt]))
            score = (out[0] @ out[1].T).diagonal()
            print(f"{p.name},{score.item()}")


def score_image_reward(root: pathlib.Path, folder: pathlib.Path, prompt: str) -> None:
    model = image_reward_model(VIT_L16, MED_CONFIG)
    model.load_state_dict(torch.load(root / "ImageReward.pt", map_location="cpu"), strict=False)
    print("file,score")
    with torch.no_grad():
        for p in sorted(folder.glob("*.png")):
            print(f"{p.name},{model.score(prompt, str(p))}")


if __name__ == "__main__":
    if sys.argv[1] == "--make":
        make(pathlib.Path(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "hpsv2":
        score_hps(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4])
    else:
        score_image_reward(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4])
