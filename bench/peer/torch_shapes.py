#!/usr/bin/python3
"""PyTorch's forward / input-gradient floor on the ImageNet shapes of `glasswing bench imagenet`.

    /usr/bin/python3 bench/peer/torch_shapes.py [--threads 2] [--models mobilenetv2,resnet50,resnet18]
                                               [--batch 1,8] [--json]

The same measurement as ../shared/peer/torch_floor.py (median ms per image after 3 warm-up calls,
>= 5 calls and >= 2 s; (a) forward under no_grad, (b) forward + the input gradient of one logit per
image) on the architectures Glasswing's bench builds: MobileNetV2 (width 1.0, inverted residuals,
ReLU6, 3.5 M parameters), ResNet-50 (bottleneck blocks [3, 4, 6, 3], 25.6 M) and ResNet-18
(basic blocks [2, 2, 2, 2], 11.7 M), 224x224x3 input, 1000 classes, BatchNorm in eval mode with
non-trivial statistics. Written here because torchvision is not installed on this machine;
parameter counts equal torchvision's. Random weights: timing does not depend on training.
Feed the --json output to `glasswing bench imagenet --peer FILE` for side-by-side ratios.
"""
import argparse, json, statistics, time
import torch
from torch import nn


def timed(fn, batch, min_calls=5, min_s=2.0):
    for _ in range(3):
        fn()
    ts, t0 = [], time.perf_counter()
    while len(ts) < min_calls or time.perf_counter() - t0 < min_s:
        s = time.perf_counter(); fn(); ts.append(time.perf_counter() - s)
        if len(ts) >= 2000:
            break
    return 1000 * statistics.median(ts) / batch


def conv_bn(cin, cout, k, stride=1, groups=1, act=True, relu6=False):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6() if relu6 else nn.ReLU())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1, relu6=True)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, relu6=True), conv_bn(hidden, cout, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        layers, cin = [conv_bn(3, 32, 3, 2, relu6=True)], 32
        for t, c, n, s in cfg:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t)); cin = c
        layers.append(conv_bn(cin, 1280, 1, relu6=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class Block(nn.Module):
    def __init__(self, cin, planes, stride, bottleneck):
        super().__init__()
        cout = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.body = nn.Sequential(conv_bn(cin, planes, 1), conv_bn(planes, planes, 3, stride), conv_bn(planes, cout, 1, act=False))
        else:
            self.body = nn.Sequential(conv_bn(cin, planes, 3, stride), conv_bn(planes, planes, 3, act=False))
        self.down = conv_bn(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self, blocks, bottleneck, classes=1000):
        super().__init__()
        layers, cin = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
        for stage, n in enumerate(blocks):
            planes = 64 * 2 ** stage
            for i in range(n):
                layers.append(Block(cin, planes, 2 if stage > 0 and i == 0 else 1, bottleneck)); cin = planes * (4 if bottleneck else 1)
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def build(name, seed=0):
    torch.manual_seed(seed)
    m = {'mobilenetv2': lambda: MobileNetV2(), 'resnet50': lambda: ResNet([3, 4, 6, 3], True), 'resnet18': lambda: ResNet([2, 2, 2, 2], False)}[name]()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                mod.weight.copy_(torch.rand(n, generator=g) * 0.4 + 0.3)
                mod.bias.copy_(torch.randn(n, generator=g) * 0.05)
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--json', action='store_true')
    ap.add_argument('--models', default='mobilenetv2,resnet50,resnet18'); ap.add_argument('--batch', default='1,8')
    a = ap.parse_args()
    torch.set_num_threads(a.threads); rows = []
    for name in a.models.split(','):
        m = build(name)
        params = sum(p.numel() for p in m.parameters())
        for b in [int(v) for v in a.batch.split(',')]:
            x = torch.rand(b, 3, 224, 224); t = torch.zeros(b, dtype=torch.long)
            def fwd():
                with torch.no_grad():
                    m(x)
            def grad():
                xi = x.clone().requires_grad_(True); out = m(xi)
                torch.autograd.grad(out.gather(1, t[:, None]).sum(), xi)
            for what, fn in (('forward', fwd), ('forward+input_grad', grad)):
                rows.append({'model': name, 'params': params, 'batch': b, 'what': what, 'ms_per_image': round(timed(fn, b), 3), 'threads': a.threads})
                print(f"{name:12s} b{b:<3d} {what:20s} {rows[-1]['ms_per_image']:9.3f} ms/image", flush=True)
    if a.json:
        print(json.dumps({'torch': torch.__version__, 'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'rows': rows}))


if __name__ == '__main__':
    main()
