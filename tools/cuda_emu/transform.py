#!/usr/bin/env python3
"""Rewrites CUDA sources for the CPU emulator (cuda_runtime.h here): kernel<<<grid, block, shared,
stream>>>(args) becomes emu::Launch(grid, block, shared, stream).run(<call kernel>, args), extern
__shared__ arrays become the launch's dynamic shared memory and static __shared__ arrays the block's
(emu::block_shared), both poisoned when each block starts.
Usage: transform.py OUT_DIR SOURCE_ROOT FILE...  (each FILE relative to SOURCE_ROOT; .cu -> .cpp)"""
import os
import re
import sys

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\(", re.S)
EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+(\w+)\s+(\w+)\[\];")
# (block_shared aligns every array to 16 bytes, so an __align__ up to 16 can go.)
STATIC_SHARED = re.compile(r"__shared__\s+(?:__align__\(\d+\)\s+)?(\w+)\s+(\w+)((?:\[[^\]]+\])+);")


def static_shared(match):
    # A static tag per declaration tells block_shared which storage is whose.
    ctype, name, dims = match.groups()
    return (f"static char emu_tag_{name}; auto& {name} = "
            f"::emu::block_shared<{ctype}{dims}>(&emu_tag_{name});")


def transform(text):
    text = EXTERN_SHARED.sub(r"\1* \2 = ::emu::dynamic_shared<\1>();", text)
    text = STATIC_SHARED.sub(static_shared, text)
    # A generic lambda calls the kernel by name, so template arguments are still deduced.
    text = LAUNCH.sub(r"::emu::Launch(\2).run([=](auto... emu_args) { \1(emu_args...); }, ", text)
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("#pragma unroll"))


def main():
    out_dir, root, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    for rel in files:
        with open(os.path.join(root, rel)) as f:
            text = transform(f.read())
        target = os.path.join(out_dir, rel[:-3] + ".cpp" if rel.endswith(".cu") else rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        old = open(target).read() if os.path.exists(target) else None
        if old != text:
            with open(target, "w") as f:
                f.write(text)


if __name__ == "__main__":
    main()
