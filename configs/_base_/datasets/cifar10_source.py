# Where CIFAR-10 comes from, shared by the CIFAR-10 pretraining and classification data bases.
# Default: the images as class folders (32 x 32 RGB JPEG, mmpretrain's CustomDataset), e.g.
#   mkdir -p data/cifar10 && tar xzf ../shared/data/cifar10-images.tar.gz -C data/cifar10
# gives data/cifar10/train/<class>/*.jpg (50,000) and data/cifar10/test/<class>/*.jpg (10,000);
# classes in alphabetical order (airplane .. truck), the official label order.
data_root = 'data/cifar10'
train_set = dict(type='CustomDataset', data_root=data_root, data_prefix='train')
test_set = dict(type='CustomDataset', data_root=data_root, data_prefix='test')
load_steps = [dict(type='LoadImageFromFile')]  # reads files as BGR
channel_order = 'bgr'  # of the images the transforms see; the data preprocessor makes RGB
# The official release instead (the python pickles in data/cifar10/cifar-10-batches-py, read by
# mmpretrain's CIFAR10 class as RGB arrays, no files): replace the four lines above by
# train_set = dict(type='CIFAR10', data_root=data_root, split='train', download=False)
# test_set = dict(type='CIFAR10', data_root=data_root, split='test', download=False)
# load_steps = []
# channel_order = 'rgb'

# RGB mean and std (0..255) of the 50,000 training images: the data preprocessor's and every
# corruption's (masked pixels take the mean, 0 after normalization)
img_norm = dict(mean=[125.31, 122.95, 113.87], std=[62.99, 62.09, 66.70])
corruption_norm = dict(img_norm, channel_order=channel_order)
to_rgb = channel_order == 'bgr'
