# The state contains the NATS CA key and passwords. Use a private, encrypted remote backend, e.g.:
#
# terraform {
#   backend "s3" {
#     bucket  = "acme-terraform-state"
#     key     = "tapio/prod.tfstate"
#     region  = "eu-west-1"
#     encrypt = true
#   }
# }
