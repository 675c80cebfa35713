// SPDX-License-Identifier: MIT
// A minimal ERC-20 for segledger's tests. Compiled with solc 0.8.26 (solcjs, --optimize);
// the artifact is TestToken.json beside this file.
pragma solidity ^0.8.20;

contract TestToken {
    string public name = "Test USD";
    string public symbol = "TUSD";
    uint8 public decimals = 6;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(uint256 supply) {
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "balance too low");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}
