"""The shipped catalogue is complete, and the loader reports every kind of mistake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.content import Content, ContentError, load_content

ROOT = Path(__file__).resolve().parents[2] / "content"

SERVICE_IDS = {"kk-baru", "kk-perubahan", "kk-hilang-rusak", "ktp-baru", "ktp-hilang-rusak",
               "ktp-perubahan", "kia", "akta-kelahiran", "akta-kematian", "akta-perkawinan",
               "akta-perceraian", "pindah", "ikd"}
OTHER_IDS = {"biaya", "jam-layanan", "lokasi", "status", "pengaduan", "saran", "operator",
             "salam", "terima-kasih"}
AGENCIES = {"lain-paspor", "lain-sim", "lain-skck", "lain-bpjs", "lain-sertifikat-tanah",
            "lain-npwp"}


def test_stable_topic_ids_exist(content: Content) -> None:
    assert set(content.services) == SERVICE_IDS
    assert set(content.topics) >= OTHER_IDS | AGENCIES


def test_areas_of_kota_kupang(content: Content) -> None:
    assert len(content.kecamatan) == 6
    assert sum(len(k.kelurahan) for k in content.kecamatan) == 51
    codes = [f"{k.code}.{kel.code}" for k in content.kecamatan for kel in k.kelurahan]
    assert len(set(codes)) == 51


def test_free_of_charge_is_stated(content: Content) -> None:
    for lang in ("id", "en"):
        assert "79A" in content.msg(lang, "free_note")
        assert "95B" in content.msg(lang, "free_note")
        assert "79A" in content.msg(lang, "free_short")


def test_unverified_office_facts_are_not_invented(content: Content) -> None:
    dinas = next(o for o in content.offices if o.kind == "dinas")
    assert dinas.phone == "" and dinas.address == ""  # until the office fills them in


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "content"
    shutil.copytree(ROOT, dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _errors(root: Path) -> list[str]:
    with pytest.raises(ContentError) as info:
        load_content(root)
    return info.value.errors


def test_missing_translation_named(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "messages.en.toml").write_text(
        (root / "messages.en.toml").read_text(encoding="utf-8").replace("\nhelp =", "\nhelpx ="),
        encoding="utf-8")
    errors = _errors(root)
    assert any(e.startswith("content/messages.en.toml: help: missing") for e in errors)
    assert any(e.startswith("content/messages.en.toml: helpx: unknown") for e in errors)


def test_label_too_long_named(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    svc = load_content(root).services["kia"]
    _edit(root / "services" / "kia.toml", f'label = {{ id = "{svc.label.id}"',
          'label = { id = "Kartu Identitas Anak yang sangat panjang"')
    assert any(e.startswith("content/services/kia.toml: label.id:") for e in _errors(root))


def test_syntax_error_named_with_line(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "faq.toml").write_text("[[topic]\nid = 'x'\n", encoding="utf-8")
    errors = _errors(root)
    assert any(e.startswith("content/faq.toml: (syntax):") and "line" in e for e in errors)


def test_unfilled_placeholder_and_bad_template(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    with (root / "services" / "ikd.toml").open("a", encoding="utf-8") as fh:
        fh.write('# note\n')
    _edit(root / "services" / "ikd.toml", 'id = "ikd"', 'id = "ikd"\n# [[ok in a comment]]')
    msgs = root / "messages.id.toml"
    msgs.write_text(msgs.read_text(encoding="utf-8").replace(
        "{group}", "{grup}", 1), encoding="utf-8")
    with (root / "topics.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[topic]]\nid = "tes"\nkind = "info"\nlabel = {id="Tes", en="Test"}\n'
                 'phrasings = ["tes satu", "tes dua"]\n'
                 'answer = {id="Alamat: [[ISI ALAMAT]]", en="Address: {nowhere}"}\n')
    errors = _errors(root)
    assert any("messages.id.toml: group_intro: unknown placeholder" in e for e in errors)
    assert any("topics.toml: topic[" in e and "answer.id: unfilled placeholder" in e
               for e in errors)
    assert any("answer.en: unknown placeholder" in e for e in errors)
    assert not any("ikd.toml" in e for e in errors)


def test_duplicate_ids_and_dangling_references(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    with (root / "faq.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[topic]]\nid = "biaya"\nkind = "faq"\nlabel = {id="Dua", en="Two"}\n'
                 'phrasings = ["a b", "c d"]\nanswer = {id="x", en="y"}\n')
    _edit(root / "menu.toml", '"t:biaya"', '"t:tidak-ada"')
    errors = _errors(root)
    assert any("faq.toml" in e and "duplicate topic id 'biaya'" in e for e in errors)
    assert any("menu.toml: main[" in e and "does not resolve" in e for e in errors)


def test_service_file_must_match_its_id(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    shutil.copy(root / "services" / "kia.toml", root / "services" / "kia-copy.toml")
    errors = _errors(root)
    assert any("kia-copy.toml: id: must equal the file name" in e for e in errors)


def test_survey_must_have_nine_unsur_with_short_answers(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    text = (root / "survey.toml").read_text(encoding="utf-8")
    head, _, rest = text.partition('[[unsur]]\nid = "U9"')
    _, _, tail = rest.partition("[[profile]]")
    (root / "survey.toml").write_text(head + "[[profile]]" + tail, encoding="utf-8")
    errors = _errors(root)
    assert any(e.startswith("content/survey.toml: unsur:") for e in errors)
    root2 = _copy(tmp_path / "b")
    _edit(root2 / "survey.toml", '{ id = "Sangat baik", en = "Very good" }',
          '{ id = "Sangat baik sekali sungguh", en = "Very good" }')
    assert any("survey.toml: unsur[U8].answers[3].id" in e for e in _errors(root2))


def test_application_status_texts_checked(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "applications.toml"
    _edit(path, "Ambil di {office}", "Ambil di {kantor}")
    assert any(e.startswith("content/applications.toml: status[siap-diambil].next.id: "
                            "unknown placeholder") for e in _errors(root))
    _edit(path, 'id = "ditolak"', 'id = "diterima"')
    assert any("applications.toml" in e and "unique" in e for e in _errors(root))


def test_command_and_answer_words_and_area_names_checked(tmp_path: Path) -> None:
    """A word in two commands (or a command and a yes/no answer) would silently do only one;
    kecamatan and kelurahan names become buttons; ids of areas go into button payloads."""
    root = _copy(tmp_path)
    _edit(root / "language.toml", 'subscribe = ["langganan"', 'subscribe = ["stop", "langganan"')
    _edit(root / "language.toml", 'no = ["tidak"', 'no = ["mau info", "tidak"')
    _edit(root / "language.toml", 'yes = [', 'yes = []  # [')
    _edit(root / "areas.toml", 'name = "Namosain"', 'name = "Namosain Raya Sekali Panjang"')
    _edit(root / "areas.toml", '{ code = "1002", name = "Nunbaun Sabu" }',
          '{ code = "1001", name = "Nunbaun Sabu" }')
    errors = _errors(root)
    assert any("language.toml: commands.subscribe: 'stop' is also in commands.stop" in e
               for e in errors)
    assert any("language.toml: answers.no: 'mau info' is also in commands.subscribe" in e
               for e in errors)
    assert "content/language.toml: answers.yes: needs at least one word" in errors
    assert any("areas.toml: kecamatan[alak].kelurahan[1001].name: 28 characters" in e
               for e in errors)
    assert any("areas.toml: kecamatan[alak].kelurahan: duplicate kelurahan code" in e
               for e in errors)


def test_settings_and_lang_are_menu_targets(tmp_path: Path, content: Content) -> None:
    assert any(e.target == "settings" for e in content.main_menu)  # the shipped menu
    root = _copy(tmp_path)
    _edit(root / "menu.toml", 'target = "settings"', 'target = "lang"')
    assert any(e.target == "lang" for e in load_content(root).main_menu)
