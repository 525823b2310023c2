#!/usr/bin/python3
"""The one place the training tools get their classes and files from: the standard Sketchy zero-shot split.

Seen = the 104 classes of ../shared/data/sketchy/all125-128 not in ../shared/data/splits/test_class_sketchy21.txt;
training uses those minus `split_seen`'s held-out classes, model selection uses the held-out ones, and the 21 unseen
classes (../shared/data/sketchy/unseen21-256) may only be read by a final measurement. Every image list a tool
loads goes through `check_purpose` (eval_zse.load_split calls it), which refuses an unseen class for any purpose but
'final-eval'. test/training.honesty.test.ts runs `--json` and `--self-test` and checks every load_split call of
tools/ names its purpose.

    /usr/bin/python3 tools/training/splits.py --json [--val-classes 10 --split-seed 0]   # the lists, as JSON
    /usr/bin/python3 tools/training/splits.py --self-test                               # the guard refuses what it must

Needs only numpy.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get('SKETCHGPU_SHARED', REPO.parent / 'shared')) / 'data'
ALL128 = SHARED / 'sketchy' / 'all125-128'
UNSEEN256 = SHARED / 'sketchy' / 'unseen21-256'
UNSEEN_LIST = SHARED / 'splits' / 'test_class_sketchy21.txt'
PURPOSES = ('train', 'select', 'cache', 'final-eval')


def unseen_classes():
    return sorted(c.strip() for c in UNSEEN_LIST.read_text().splitlines() if c.strip())


def seen_classes():
    """The 104 seen classes: all125-128 minus the 21 unseen classes of test_class_sketchy21."""
    unseen = set(unseen_classes())
    allc = sorted(p.name for p in (ALL128 / 'photo').iterdir() if p.is_dir())
    seen = [c for c in allc if c not in unseen]
    # 125 in ../shared; 104 in a pack of the seen classes alone (tools/device/pack-train.sh)
    assert len(allc) in (125, 104) and len(seen) == 104, (len(allc), len(seen))
    return seen


def split_seen(val_classes, seed):
    """Deterministic split of the 104 seen classes into (train, val); val_classes of them drawn with seed."""
    seen = seen_classes()
    rng = np.random.RandomState(seed)
    val = sorted(rng.choice(seen, val_classes, replace=False).tolist()) if val_classes else []
    train = [c for c in seen if c not in set(val)]
    return train, val


class UnseenClassError(AssertionError):
    pass


def check_purpose(root, classes, purpose):
    """Refuse any unseen class, or the unseen folder, unless purpose is 'final-eval' (a measurement after training)."""
    if purpose not in PURPOSES:
        raise ValueError(f'purpose must be one of {PURPOSES}, not {purpose!r}')
    if purpose == 'final-eval':
        return
    bad = sorted(set(classes) & set(unseen_classes()))
    if bad or Path(root).resolve() == UNSEEN256.resolve():
        raise UnseenClassError(f'{purpose} must never read the unseen classes: {bad or root}')


def files_of(root, classes, modality):
    return [f'{modality}/{c}/{p.name}' for c in classes for p in sorted((Path(root) / modality / c).iterdir())]


def main():
    ap = argparse.ArgumentParser(description='the zero-shot split the training tools use')
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--self-test', action='store_true')
    ap.add_argument('--val-classes', type=int, default=10)
    ap.add_argument('--split-seed', type=int, default=0)
    a = ap.parse_args()
    if a.self_test:
        refused = []
        for root, cls, purpose in ((ALL128, [unseen_classes()[0]], 'train'), (ALL128, ['airplane', unseen_classes()[3]], 'select'),
                                   (UNSEEN256, [], 'cache'), (ALL128, seen_classes()[:1], 'eval')):
            try:
                check_purpose(root, cls, purpose)
            except (UnseenClassError, ValueError):
                refused.append(purpose)
        check_purpose(UNSEEN256, unseen_classes(), 'final-eval')
        check_purpose(ALL128, seen_classes(), 'train')
        print(json.dumps({'refused': refused}))
        sys.exit(0 if refused == ['train', 'select', 'cache', 'eval'] else 1)
    train, val = split_seen(a.val_classes, a.split_seed)
    for purpose, cls in (('train', train), ('select', val), ('cache', seen_classes())):
        check_purpose(ALL128, cls, purpose)
    out = {'unseen': unseen_classes(), 'seen': seen_classes(), 'train': train, 'val': val,
           'train_files': files_of(ALL128, train, 'sketch') + files_of(ALL128, train, 'photo'),
           'val_files': files_of(ALL128, val, 'sketch') + files_of(ALL128, val, 'photo')}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
