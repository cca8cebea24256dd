# Short name of the flagship recipe (Table 3, Ours Mixed, ViT-B/16, 200 epochs):
#   tools/dist_train.sh configs/ebm_vit-b_8xb256.py 8
_base_ = ['./ebm/ebm_vit-base-p16_8xb256-mixed-amp-coslr-200e_in1k.py']
