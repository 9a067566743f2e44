"""tools/layers: the layer rule of DESIGN.md 2 holds on the tree, and the
checker catches each kind of break when one is planted in a copy of src/."""
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYERS = ROOT / "tools" / "layers"


BASELINE = ROOT / "tools" / "layers.baseline"


def run(root, *extra):
    return subprocess.run(["/usr/bin/python3", str(LAYERS), "--root", str(root), *extra],
                          capture_output=True, text=True, timeout=60)


def copy_tree(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src")
    return tmp_path


def plant(path, after, line):
    text = path.read_text()
    assert after in text
    path.write_text(text.replace(after, after + line, 1))


def test_tree_passes_with_its_baseline():
    """make check's run: no break beyond the known ones of the baseline."""
    r = run(ROOT, "--baseline", str(BASELINE))
    assert r.returncode == 0, r.stdout + r.stderr


def test_baseline_hides_only_what_it_lists(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "src" / "relay" / "deliver.c"
    plant(f, '#include "relay/deliver.h"\n', '#include "cmd/cmd.h"\n')
    r = run(root, "--baseline", str(BASELINE))
    assert r.returncode == 1
    assert "relay/ may not include cmd/cmd.h" in r.stdout
    # a baseline line that no longer breaks anything must be deleted
    stale = tmp_path / "stale.baseline"
    stale.write_text("src/lib/buf.c:12: lib/ may not include conf/conf.h\n")
    r = run(ROOT, "--baseline", str(stale))
    assert r.returncode == 1
    assert "no longer breaks a rule, delete the line" in r.stdout


def test_upward_include_fails(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "src" / "relay" / "deliver.c"
    plant(f, '#include "relay/deliver.h"\n', '#include "diag/probe.h"\n')
    r = run(root)
    assert r.returncode == 1
    assert "src/relay/deliver.c:" in r.stdout
    assert "relay/ may not include diag/probe.h" in r.stdout


def test_libevent_outside_net_fails(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "src" / "queue" / "queue.c"
    plant(f, '#include "queue/queue.h"\n', "#include <event2/event.h>\n")
    r = run(root)
    assert r.returncode == 1
    assert "<event2/event.h> outside net/" in r.stdout


def test_cycle_fails(tmp_path):
    root = copy_tree(tmp_path)
    # lib/buf.h -> lib/base64.h while base64.h includes buf.h: a cycle
    plant(root / "src" / "lib" / "buf.h", "#include <stddef.h>\n", '#include "lib/base64.h"\n')
    r = run(root)
    assert r.returncode == 1
    assert "include cycle" in r.stdout and "lib/buf" in r.stdout and "lib/base64" in r.stdout


def test_long_file_and_function_fail(tmp_path):
    root = copy_tree(tmp_path)
    body = "".join(f"\tx += {i};\n" for i in range(1100))
    (root / "src" / "lib" / "long.c").write_text(
        "int long_fn(int x);\n\nint\nlong_fn(int x)\n{\n" + body + "\treturn x;\n}\n")
    r = run(root)
    assert r.returncode == 1
    assert "src/lib/long.c:1: 1107 lines (at most 1000)" in r.stdout
    assert "src/lib/long.c:4: function long_fn has 1104 lines (at most 150)" in r.stdout


def test_unknown_folder_fails(tmp_path):
    root = copy_tree(tmp_path)
    (root / "src" / "misc").mkdir()
    (root / "src" / "misc" / "x.c").write_text("int x;\n")
    r = run(root)
    assert r.returncode == 1
    assert "folder 'misc' is not a layer" in r.stdout


def test_tracker_reference_fails(tmp_path):
    root = copy_tree(tmp_path)
    plant(root / "src" / "lib" / "buf.c", '#include "lib/buf.h"\n', "/* as issue 12 asked */\n")
    r = run(root)
    assert r.returncode == 1
    assert "src/lib/buf.c:" in r.stdout and "names a tracker issue" in r.stdout
