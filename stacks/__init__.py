"""AWS CDK constructs and stacks: one construct per concern, one stack that composes them."""
