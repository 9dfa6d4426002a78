#!/usr/bin/python3
"""Where a preact-resnet18 model's eval-mode accuracy goes: stored BatchNorm running statistics vs batch statistics.

    /usr/bin/python3 tests/bench/bn_statistics_check.py MODEL.safetensors [PREVIOUS.safetensors]

Loads a model trained by `robust train --arch preact-resnet18` (CIFAR-format data in runs/cifar10-format) into the
PyTorch definition of tests/fixtures/pytorch/make_fixture.py, and prints its accuracy on the first 1,000 training
images in eval mode with the stored running statistics, in train mode (batch statistics), and in eval mode after the
running statistics are recomputed as a cumulative average over those images. With PREVIOUS (the same run's model
before its last epoch) it also checks that the stored statistics are the exponential moving average PyTorch's
BatchNorm keeps (momentum 0.1) of PREVIOUS's and the recomputed ones. Results: docs/results.md (preact-resnet18 smoke run).
"""
import os, sys, numpy as np, torch
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures', 'pytorch'))
DATA = os.environ.get('CIFAR_FORMAT', 'runs/cifar10-format') + '/data_batch_1.bin'
torch.set_num_threads(1)
from make_zoo_fixture import read_safetensors
from make_fixture import PreActResNet18
t,m=read_safetensors(sys.argv[1])
net=PreActResNet18(); sd=net.state_dict()
missing=[k for k in sd if k not in t]; print('missing', missing[:5])
net.load_state_dict({k:t[k].to(sd[k].dtype) for k in sd})
raw=np.fromfile(DATA,dtype=np.uint8).reshape(-1,3073)
y=torch.from_numpy(raw[:,0].astype(np.int64)); x=torch.from_numpy(raw[:,1:].reshape(-1,3,32,32).astype(np.float32)/255)
x,y=x[:1000],y[:1000]
def acc(train):
    net.train(train)
    with torch.no_grad():
        return sum((net(x[i:i+100]).argmax(1)==y[i:i+100]).sum().item() for i in range(0,len(x),100))/len(x)
print('eval-mode (stored running stats)', acc(False))
print('train-mode (batch stats, 100/batch)', acc(True))
# recompute running stats: cumulative average over the data
net.load_state_dict({k:t[k].to(sd[k].dtype) for k in sd})
for mod in net.modules():
    if isinstance(mod, torch.nn.BatchNorm2d): mod.reset_running_stats(); mod.momentum=None
net.train()
with torch.no_grad():
    for i in range(0,len(x),100): net(x[i:i+100])
print('eval-mode after recomputing running stats', acc(False))
if len(sys.argv) < 3: sys.exit(0)
steps = int(os.environ.get('STEPS', '15'))
t0,_=read_safetensors(sys.argv[2])
true={k:v.clone() for k,v in net.state_dict().items()}
for k in [k for k in t if k.endswith('num_batches_tracked')][:3]: print(k, t0[k].item(), t[k].item())
for k in [k for k in t if k.endswith('running_mean') or k.endswith('running_var')][:12]:
    a,b,c=t0[k].float(),t[k].float(),true[k].float()
    print(k, 'stored-true rel %.3f'%((b-c).norm()/c.norm()).item(), 'smoke-true rel %.3f'%((a-c).norm()/c.norm()).item(), 'EMA prediction vs stored %.3f'%(((0.9**steps)*a+(1-0.9**steps)*c-b).norm()/c.norm()).item())
