#!/usr/bin/python3
"""PyTorch's forward / input-gradient floor in process CPU time as well as wall time.

    /usr/bin/python3 bench/peer/torch_cpu.py [THREADS=1] [MODELS=mnist_cnn[,resnet18]]

The same models (../shared/peer/models.py) and calls as ../shared/peer/torch_floor.py — (a) forward
under no_grad, (b) forward + the input gradient of one logit per image; batch 1 and 32 for
mnist_cnn, 1 and 8 for resnet18 — after 3 warm-up calls, >= 9 calls and >= 3 s, printing one JSON
line per row with the wall minimum and median and the median CPU time, in ms per image. On the
shared machine the CPU time of a 1-thread run is the per-core cost and is far steadier than wall
time (compare with the cpu_ms_per_image of `glasswing bench engine`).
"""
import json, os, statistics, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'peer'))
import torch  # noqa: E402
import models  # noqa: E402

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
names = sys.argv[2].split(',') if len(sys.argv) > 2 else ['mnist_cnn']
torch.set_num_threads(threads)
for name in names:
    m = {'mnist_cnn': models.mnist_cnn, 'resnet18': models.resnet18}[name]().eval()
    shape, batches = ((3, 224, 224), (1, 8)) if name == 'resnet18' else ((1, 28, 28), (1, 32))
    for b in batches:
        x = torch.rand(b, *shape)
        t = torch.zeros(b, dtype=torch.long)

        def fwd():
            with torch.no_grad():
                m(x)

        def grad():
            xi = x.clone().requires_grad_(True)
            out = m(xi)
            torch.autograd.grad(out.gather(1, t[:, None]).sum(), xi)

        for what, fn in (('forward', fwd), ('forward+input_grad', grad)):
            for _ in range(3):
                fn()
            ws, cs, t0 = [], [], time.perf_counter()
            while len(ws) < 9 or time.perf_counter() - t0 < 3.0:
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                ws.append(time.perf_counter() - w0)
                cs.append(time.process_time() - c0)
                if len(ws) >= 2000:
                    break
            print(json.dumps({'model': name, 'batch': b, 'what': what, 'threads': threads,
                              'wall_min': round(1000 * min(ws) / b, 3), 'wall_median': round(1000 * statistics.median(ws) / b, 3),
                              'cpu_median': round(1000 * statistics.median(cs) / b, 3)}), flush=True)
